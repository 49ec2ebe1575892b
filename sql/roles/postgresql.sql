-- A read-only role for analysts and BI tools on a PostgreSQL warehouse.
--
-- Run it with psql, as a superuser or the database's owner, connected to the warehouse
-- database, after `zvm-etl db upgrade`:
--
--   psql "postgresql://admin@db-host/warehouse" -v reader=zvm_etl_reader -v owner=zvm_etl \
--        -f sql/roles/postgresql.sql
--
-- Variables (psql -v NAME=VALUE):
--   reader  the role to create or update                    [default: zvm_etl_reader]
--   owner   the role that runs zvm-etl and owns the tables  [default: the current user]
--
-- The role can connect to this database and SELECT every table and view, today's and
-- those later migrations create (default privileges of the owner); nothing else: no
-- INSERT, UPDATE, DELETE, TRUNCATE, no CREATE in the schema, no temporary tables. It has
-- no LOGIN: give it to a login role (see docs/bi.md):
--
--   CREATE ROLE metabase LOGIN PASSWORD '...' IN ROLE zvm_etl_reader;
--
-- Two changes concern every role of this database, not only the reader (PostgreSQL grants
-- them to PUBLIC, whose privileges every role has): CREATE on schema public is revoked
-- from PUBLIC (already so on PostgreSQL 15 and later), and TEMPORARY on the database is
-- revoked from PUBLIC and granted back to the owner (zvm-etl writes through temporary
-- tables). Running the script again changes nothing more.
\set ON_ERROR_STOP on
\if :{?reader}
\else
  \set reader zvm_etl_reader
\endif
\if :{?owner}
\else
  SELECT current_user AS owner \gset
\endif

SELECT format('CREATE ROLE %I NOLOGIN', :'reader')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'reader') \gexec

SELECT format('REVOKE ALL ON DATABASE %I FROM %I', current_database(), :'reader') \gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'reader') \gexec
SELECT format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database()) \gexec
SELECT format('GRANT TEMPORARY ON DATABASE %I TO %I', current_database(), :'owner') \gexec

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON SCHEMA public FROM :"reader";
GRANT USAGE ON SCHEMA public TO :"reader";
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :"reader";
GRANT SELECT ON ALL TABLES IN SCHEMA public TO :"reader";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public GRANT SELECT ON TABLES TO :"reader";
