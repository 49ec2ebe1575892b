"""What a ZVM knows about tasks: the documented types, the state enum, and the weights the
simulated scenario draws from.

The documented type list is the one Zerto publishes for ``GET /v1/tasks/types`` (see
``docs/zvm-api.md``), in the documented order. :data:`UNDOCUMENTED_TYPES`
model newer ZVM versions: tasks of these types appear in ``/v1/tasks`` but the types endpoint
does not list them, so a ``type=`` filter naming one of them is refused like any unknown type.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BURST_TYPES",
    "CANCELLABLE_TYPES",
    "COMMIT_TYPES",
    "DOCUMENTED_TYPES",
    "FLR_TYPES",
    "HOST_TYPES",
    "SITE_ONLY_TYPES",
    "STATE_NAMES",
    "SYSTEM_TYPES",
    "TERMINAL_STATES",
    "TYPE_WEIGHTS",
    "UNDOCUMENTED_SHARE",
    "UNDOCUMENTED_TYPES",
    "State",
]


class State:
    """``Status.State`` values (Json/XML enum of the tasks API)."""

    FIRST_UNUSED_VALUE: Final = 0
    IN_PROGRESS: Final = 1
    WAITING_FOR_USER_INPUT: Final = 2
    PAUSED: Final = 3
    FAILED: Final = 4
    STOPPED: Final = 5
    COMPLETED: Final = 6
    CANCELLING: Final = 7


STATE_NAMES: Final[tuple[str, ...]] = (
    "FirstUnusedValue",
    "InProgress",
    "WaitingForUserInput",
    "Paused",
    "Failed",
    "Stopped",
    "Completed",
    "Cancelling",
)
"""Names of the states, indexed by value."""

TERMINAL_STATES: Final = frozenset({State.FAILED, State.STOPPED, State.COMPLETED})
"""A task in one of these states has ``Completed`` set and never changes again."""

DOCUMENTED_TYPES: Final[tuple[str, ...]] = (
    "CreateProtectionGroup",
    "RemoveProtectionGroup",
    "FailOver",
    "FailOverTest",
    "StopFailOverTest",
    "Move",
    "ProtectVM",
    "UnprotectVM",
    "AddVMToProtectionGroup",
    "RemoveVMFromProtectionGroup",
    "InstallVra",
    "UninstallVra",
    "GetVMSettings",
    "UpdateProtectionGroup",
    "InsertTaggedCP",
    "WaitForCP",
    "HandleMirrorPromotion",
    "ActivateAllMirrors",
    "LogCollection",
    "ClearCheckpoints",
    "ForceReconfigurationOfNewVM",
    "ClearSite",
    "ForceRemoveProtectionGroup",
    "ForceUpdateProtectionGroup",
    "ForceKillProtectionGroup",
    "PrePostScript",
    "InitFullSync",
    "Pair",
    "Unpair",
    "AddPeerVraInfo",
    "RemovePeerVraInfo",
    "InstallCloudConnector",
    "UninstallCloudConnector",
    "HandleFirstSyncDone",
    "Clone",
    "MoveBeforeCommit",
    "MoveRollback",
    "MoveCommit",
    "MaintainHost",
    "NotSupportedInThisVersion",
    "MoveProtectionGroupToManualOperationNeeded",
    "FailoverBeforeCommit",
    "FailoverCommit",
    "FailoverRollback",
    "ChangeVraIpSettings",
    "PauseProtectionGroup",
    "ResumeProtectionGroup",
    "BulkUpgradeVras",
    "BulkUninstallVras",
    "ChangeVraPassword",
    "ChangeRecoveryHost",
    "ChangeRecoveryHostForProtectionGroup",
    "VpgBackup",
    "RedeployCloudConnectorCleanup",
    "RestoreVpg",
    "VpgDeleteBackup",
    "SubmitSupportTicket",
    "PreScript",
    "PostScript",
    "ChangeVraPasswordIpSettings",
    "FlrJournalMount",
    "FlrJournalUnmount",
    "Login",
)

UNDOCUMENTED_TYPES: Final[tuple[str, ...]] = (
    "SyncVmsWithCloud",
    "UpgradeVra",
    "CreateLtrRepository",
)
"""Types a newer ZVM emits that the documented list (and ``/v1/tasks/types``) lacks."""

UNDOCUMENTED_SHARE: Final = 0.01
"""Fraction of generated tasks whose type is one of :data:`UNDOCUMENTED_TYPES`."""

_HEAVY_WEIGHTS: Final[dict[str, float]] = {
    "InsertTaggedCP": 14.0,
    "Login": 12.0,
    "FailOverTest": 10.0,
    "StopFailOverTest": 10.0,
    "UpdateProtectionGroup": 10.0,
    "FlrJournalMount": 3.0,
    "FlrJournalUnmount": 3.0,
    "Move": 2.0,
    "MoveBeforeCommit": 1.2,
    "MoveCommit": 1.2,
    "FailOver": 1.0,
    "FailoverBeforeCommit": 1.0,
    "FailoverCommit": 1.0,
    "InstallVra": 1.5,
    "CreateProtectionGroup": 2.0,
    "WaitForCP": 2.0,
    "ProtectVM": 1.5,
    "InitFullSync": 1.0,
    "HandleFirstSyncDone": 1.0,
    "PauseProtectionGroup": 0.8,
    "ResumeProtectionGroup": 0.8,
    "LogCollection": 0.6,
}

TYPE_WEIGHTS: Final[dict[str, float]] = {
    name: _HEAVY_WEIGHTS.get(name, 0.3) for name in DOCUMENTED_TYPES
}
"""Relative frequency of each documented type in the generated history."""

BURST_TYPES: Final[tuple[str, ...]] = (
    "InsertTaggedCP",
    "FailOverTest",
    "StopFailOverTest",
    "UpdateProtectionGroup",
)
"""Types started as a burst (several VPGs at once, same ``Started`` millisecond)."""

CANCELLABLE_TYPES: Final = frozenset(
    {
        "FailOver",
        "FailOverTest",
        "Move",
        "Clone",
        "InitFullSync",
        "BulkUpgradeVras",
        "BulkUninstallVras",
        "InstallVra",
        "LogCollection",
        "VpgBackup",
        "RestoreVpg",
        "SyncVmsWithCloud",
    }
)
"""Types whose ``IsCancellable`` is true while they run."""

COMMIT_TYPES: Final = frozenset({"FailOver", "Move", "FailoverBeforeCommit", "MoveBeforeCommit"})
"""Types that may wait for the user (``WaitingForUserInput``) before committing."""

FLR_TYPES: Final = frozenset({"FlrJournalMount", "FlrJournalUnmount"})
"""Types that carry ``RelatedEntities.FlrSessions``."""

HOST_TYPES: Final = frozenset(
    {
        "InstallVra",
        "UninstallVra",
        "MaintainHost",
        "ChangeVraIpSettings",
        "ChangeVraPassword",
        "ChangeVraPasswordIpSettings",
        "BulkUpgradeVras",
        "BulkUninstallVras",
        "ChangeRecoveryHost",
        "UpgradeVra",
        "AddPeerVraInfo",
        "RemovePeerVraInfo",
    }
)
"""Types about hosts (VRAs): ``RelatedEntities.Hosts`` is filled, ``Vpgs`` is mostly empty."""

SITE_ONLY_TYPES: Final = frozenset(
    {
        "Pair",
        "Unpair",
        "ClearSite",
        "InstallCloudConnector",
        "UninstallCloudConnector",
        "RedeployCloudConnectorCleanup",
        "SubmitSupportTicket",
        "LogCollection",
        "NotSupportedInThisVersion",
        "CreateLtrRepository",
    }
)
"""Types that relate to sites only (no VPG, no host)."""

SYSTEM_TYPES: Final = frozenset(
    {
        "WaitForCP",
        "HandleFirstSyncDone",
        "HandleMirrorPromotion",
        "InitFullSync",
        "ForceReconfigurationOfNewVM",
        "ActivateAllMirrors",
        "SyncVmsWithCloud",
    }
)
"""Types the ZVM starts by itself: ``InitiatedBy`` is ``System``."""
