"""Per-account state of the realism layer: an emulated clock, the transitions in flight
and done, durations and limits, faults, health-check overrides and Route 53 changes.

Tests run in parallel against one emulator, each in an account of its own, so every
setting here is scoped to one account. One lock guards all of it: the emulator is a
development tool, and a global lock keeps "check a quota, then create" atomic without
reasoning about moto's own thread safety.
"""

import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

log = logging.getLogger("lifeboat_local")

LOCK = threading.RLock()

DEFAULT_ACCOUNT = "123456789012"

# How long AWS takes, in AWS seconds, before the time scale compresses it. Each default is
# a realistic figure for the small resources of the demo world (a 20 GB PostgreSQL
# instance, a small Aurora cluster, a small table); the source of each is given.
DURATIONS = {
    "db_instance_create": (
        600,
        "CreateDBInstance: creating -> available",
        "a new instance takes minutes to become available (RDS user guide); 10 min for a small one",
    ),
    "db_instance_read_replica": (
        1200,
        "CreateDBInstanceReadReplica: creating -> available",
        "a cross-Region replica is a snapshot, a copy and a restore in one; 20 min for 20 GB",
    ),
    "db_instance_restore": (
        1200,
        "RestoreDBInstanceFromDBSnapshot: creating -> available",
        "a restore builds a new instance and loads the snapshot lazily; 20 min, longer than one Lambda invocation (15 min)",
    ),
    "db_instance_restore_pitr": (
        1500,
        "RestoreDBInstanceToPointInTime: creating -> available",
        "a restore plus replaying transaction logs to the chosen time; 25 min",
    ),
    "db_instance_promote": (
        180,
        "PromoteReadReplica: modifying -> rebooting",
        "promotion takes a few minutes and ends with a reboot (RDS user guide, working with read replicas)",
    ),
    "db_instance_reboot": (
        90,
        "reboot (after promotion, or RebootDBInstance): rebooting -> available",
        "a reboot takes a minute or two, most of it crash recovery",
    ),
    "db_instance_delete": (
        300,
        "DeleteDBInstance: deleting -> gone",
        "deletion takes minutes; the identifier stays in use until it is gone",
    ),
    "db_cluster_create": (
        300,
        "CreateDBCluster: creating -> available",
        "the cluster volume comes up in minutes (its instances are created separately)",
    ),
    "db_cluster_restore": (
        900,
        "RestoreDBClusterFromSnapshot: creating -> available",
        "a cluster restore takes minutes to tens of minutes; 15 min",
    ),
    "db_cluster_restore_pitr": (
        1200,
        "RestoreDBClusterToPointInTime: creating -> available",
        "a cluster restore plus log replay; 20 min",
    ),
    "db_cluster_delete": (
        300,
        "DeleteDBCluster: deleting -> gone",
        "deletion takes minutes",
    ),
    "db_snapshot_create": (
        300,
        "CreateDBSnapshot (and a final snapshot): creating -> available",
        "a first snapshot of a 20 GB instance takes minutes",
    ),
    "db_snapshot_copy_queue": (
        60,
        "CopyDBSnapshot: pending -> copying",
        "copies are queued before they start, with no progress shown (RDS user guide, copying a DB snapshot)",
    ),
    "db_snapshot_copy": (
        1200,
        "CopyDBSnapshot: copying -> available",
        "a cross-Region copy can take hours (RDS user guide); 20 min for a first full copy of 20 GB",
    ),
    "db_cluster_snapshot_create": (
        120,
        "CreateDBClusterSnapshot: creating -> available",
        "Aurora snapshots are taken at the storage layer and finish in a minute or two",
    ),
    "db_cluster_snapshot_copy": (
        1200,
        "CopyDBClusterSnapshot: copying -> available",
        "a cross-Region copy can take hours (Aurora user guide); 20 min",
    ),
    "dynamodb_backup_create": (
        120,
        "CreateBackup: CREATING -> AVAILABLE",
        "backups 'become available for restore within minutes' (DynamoDB CreateBackup API reference)",
    ),
    "route53_change": (
        60,
        "ChangeResourceRecordSets / CreateHostedZone: PENDING -> INSYNC",
        "changes reach all Route 53 name servers 'generally within 60 seconds' (Route 53 API reference, GetChange)",
    ),
}

# Real seconds per AWS second. 0.0025 turns the 20-minute waits (copies, restores,
# replicas) into 3 s and a 5-minute snapshot into 0.75 s.
DEFAULT_TIME_SCALE = 0.0025

LIMITS = {
    "manual_db_snapshots_per_region": (
        100,
        "manual DB snapshots per Region (RDS quotas); beyond: SnapshotQuotaExceeded",
    ),
    "manual_cluster_snapshots_per_region": (
        100,
        "manual DB cluster snapshots per Region (RDS quotas); beyond: SnapshotQuotaExceeded",
    ),
    "concurrent_copies_per_region": (
        20,
        "cross-Region snapshot copies in progress into one destination Region (RDS user guide); beyond: SnapshotQuotaExceeded",
    ),
}


class Clock:
    """An account's emulated clock, in AWS seconds since the epoch. It starts at the wall
    clock and runs 1/scale times faster; a jump moves it forward at once."""

    def __init__(self, scale: float, wall: float):
        self.scale = scale
        self.anchor_wall = wall
        self.anchor_emulated = wall

    def now(self, wall: float) -> float:
        return self.anchor_emulated + (wall - self.anchor_wall) / self.scale

    def wall_at(self, emulated: float) -> float:
        """When (wall clock) this clock shows `emulated`, or showed it: a moment passed in a
        jump maps to the jump itself."""
        return max(self.anchor_wall, self.anchor_wall + (emulated - self.anchor_emulated) * self.scale)

    def reanchor(self, wall: float) -> None:
        self.anchor_emulated = self.now(wall)
        self.anchor_wall = wall


@dataclass
class Step:
    """One status change of a resource: to `status` after the duration named `duration`,
    then `effect` (set the status on the emulated object, remove it, detach it...)."""

    status: str
    duration: str
    effect: Callable[[], None]
    # Called with the fraction done (0..1) while the step is in progress.
    progress: Optional[Callable[[float], None]] = None


@dataclass
class Transition:
    id: int
    service: str
    region: str
    resource_type: str
    resource: str
    kind: str
    from_status: str
    step: Step
    seconds: float
    started_at: float
    completes_at: float
    started_wall: float
    rest: list = field(default_factory=list)
    completed_wall: Optional[float] = None
    state: str = "in_progress"

    def as_json(self, clock: Clock) -> dict:
        return {
            "id": self.id,
            "service": self.service,
            "region": self.region,
            "resource_type": self.resource_type,
            "resource": self.resource,
            "kind": self.kind,
            "from": self.from_status,
            "to": self.step.status,
            "duration_key": self.step.duration,
            "seconds": self.seconds,
            "state": self.state,
            "started_at": self.started_at,
            "completes_at": self.completes_at,
            "started_at_wall": self.started_wall,
            "completes_at_wall": (
                self.completed_wall if self.completed_wall is not None else clock.wall_at(self.completes_at)
            ),
        }


_ids = itertools.count(1)


class AccountState:
    def __init__(self, account: str, scale: float):
        self.account = account
        self.clock = Clock(scale, time.time())
        self.durations: dict[str, float] = {}
        self.limits: dict[str, int] = {}
        self.faults: dict = {}  # id -> faults.Fault, in creation order
        self.transitions: list[Transition] = []
        self.unhealthy_checks: set[str] = set()
        self.changes: dict[str, Transition] = {}  # Route 53 change id -> its transition

    # --- settings -------------------------------------------------------------------

    def duration(self, name: str) -> float:
        return self.durations.get(name, DURATIONS[name][0])

    def limit(self, name: str) -> int:
        return self.limits.get(name, LIMITS[name][0])

    # --- time -----------------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now(time.time())

    def advance(self, seconds: float) -> None:
        wall = time.time()
        self.settle(wall)
        self.clock.reanchor(wall)
        self.clock.anchor_emulated += seconds
        self.settle(wall)

    def set_scale(self, scale: float) -> None:
        wall = time.time()
        self.settle(wall)
        self.clock.reanchor(wall)
        self.clock.scale = scale

    # --- transitions ----------------------------------------------------------------

    def begin(
        self,
        *,
        service: str,
        region: str,
        resource_type: str,
        resource: str,
        kind: str,
        status: str,
        steps: list,
    ) -> None:
        """Start a resource's chain of steps from `status` (which the caller has already
        set on the emulated object) now; any chain already running for it is cancelled."""
        self.cancel(service, region, resource_type, resource)
        self._start(service, region, resource_type, resource, kind, status, steps, self.now())

    def _start(self, service, region, resource_type, resource, kind, status, steps, at) -> None:
        step, rest = steps[0], steps[1:]
        seconds = self.duration(step.duration)
        transition = Transition(
            id=next(_ids),
            service=service,
            region=region,
            resource_type=resource_type,
            resource=resource,
            kind=kind,
            from_status=status,
            step=step,
            seconds=seconds,
            started_at=at,
            completes_at=at + seconds,
            started_wall=self.clock.wall_at(at),
            rest=rest,
        )
        self.transitions.append(transition)
        if step.progress:
            step.progress(0.0)

    def cancel(self, service: str, region: str, resource_type: str, resource: str) -> None:
        for t in self.transitions:
            if (
                t.state == "in_progress"
                and (t.service, t.region, t.resource_type, t.resource)
                == (service, region, resource_type, resource)
            ):
                t.state = "cancelled"
                t.completed_wall = time.time()

    def in_progress(self, service: str, region: str, resource_type: str, resource: str) -> bool:
        return any(
            t.state == "in_progress"
            and (t.service, t.region, t.resource_type, t.resource) == (service, region, resource_type, resource)
            for t in self.transitions
        )

    def settle(self, wall: Optional[float] = None) -> None:
        """Complete every step whose time has come, in the order they complete (a chain's
        next step starts when the previous one ends, in emulated time), and update the
        progress of the rest."""
        wall = time.time() if wall is None else wall
        now = self.clock.now(wall)
        while True:
            due = [t for t in self.transitions if t.state == "in_progress" and t.completes_at <= now]
            if not due:
                break
            t = min(due, key=lambda d: (d.completes_at, d.id))
            t.state = "completed"
            t.completed_wall = self.clock.wall_at(t.completes_at)
            try:
                t.step.effect()
            except Exception:  # the resource may have gone meanwhile; the clock goes on
                log.exception("transition %s of %s failed to apply", t.kind, t.resource)
            if t.rest:
                self._start(
                    t.service, t.region, t.resource_type, t.resource, t.kind, t.step.status, t.rest, t.completes_at
                )
        for t in self.transitions:
            if t.state == "in_progress" and t.step.progress:
                done = (now - t.started_at) / t.seconds if t.seconds > 0 else 1.0
                t.step.progress(min(max(done, 0.0), 1.0))


class Registry:
    def __init__(self):
        self.default_scale = DEFAULT_TIME_SCALE
        self.accounts: dict[str, AccountState] = {}

    def account(self, account: str) -> AccountState:
        with LOCK:
            state = self.accounts.get(account)
            if state is None:
                state = self.accounts[account] = AccountState(account, self.default_scale)
            return state

    def reset(self) -> None:
        with LOCK:
            self.accounts.clear()


REGISTRY = Registry()
