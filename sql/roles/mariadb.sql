-- A read-only role for analysts and BI tools on a MariaDB warehouse (MariaDB 10.2+).
--
-- Run it as an administrator, connected to the warehouse database:
--
--   mariadb -h db-host -u root -p warehouse < sql/roles/mariadb.sql
--
-- or, to choose the role's name (a user variable set before the script runs):
--
--   mariadb -h db-host -u root -p warehouse \
--     -e "SET @reader = 'zvm_etl_reader'; SOURCE sql/roles/mariadb.sql;"
--
-- Variables (user variables, set before the script):
--   @reader     the role to create or update  [default: zvm_etl_reader]
--   @warehouse  the database it reads         [default: the current database]
--
-- The role can SELECT every table and view of that database, today's and those later
-- migrations create (a grant on `warehouse`.*), and SHOW VIEW; nothing else: no INSERT,
-- UPDATE, DELETE, CREATE (temporary tables included), DROP or ALTER. The views run with
-- the privileges of whoever queries them (SQL SECURITY INVOKER), which this grant covers.
-- Give the role to a login user and make it that user's default role (docs/bi.md):
--
--   CREATE USER 'metabase'@'%' IDENTIFIED BY '...';
--   GRANT zvm_etl_reader TO 'metabase'@'%';
--   SET DEFAULT ROLE zvm_etl_reader FOR 'metabase'@'%';
--
-- Running the script again changes nothing more.
SET @reader = COALESCE(@reader, 'zvm_etl_reader');
SET @warehouse = COALESCE(@warehouse, DATABASE());
EXECUTE IMMEDIATE CONCAT('CREATE ROLE IF NOT EXISTS ', QUOTE(@reader));
EXECUTE IMMEDIATE CONCAT(
    'GRANT SELECT, SHOW VIEW ON `', REPLACE(@warehouse, '`', '``'), '`.* TO ', QUOTE(@reader)
);
