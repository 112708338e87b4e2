"""RDS as AWS runs it: instances, clusters and snapshots pass through their transient
states for realistic durations; the limits AWS enforces are enforced; operations AWS
refuses on a resource in a transient state are refused with AWS's error code; listings
are paginated with MaxRecords and Marker.

moto keeps the resources; this module wraps moto's RDS request handlers (where the
request's parameters are needed) and a few backend methods (where the objects are), and
drives each status change through the account's clock (state.AccountState).
"""

import base64
import functools

from moto.core.responses import ActionResult
from moto.rds import exceptions as rds_exceptions
from moto.rds import models as rds_models
from moto.rds.exceptions import DBInstanceNotFoundError, RDSClientError
from moto.rds.responses import RDSResponse
from moto.rds.utils import split_arn

from .state import LOCK, REGISTRY, Step


def error(code: str, message: str) -> RDSClientError:
    return RDSClientError(code, message)


def around(cls, name):
    """Replace `cls.name` by `fn(self, original)`, where `original()` runs moto's own."""

    def decorate(fn):
        original = getattr(cls, name)

        @functools.wraps(original)
        def wrapper(self, *args, **kwargs):
            return fn(self, lambda: original(self, *args, **kwargs), *args, **kwargs)

        setattr(cls, name, wrapper)
        return fn

    return decorate


def truthy(value) -> bool:
    return value is True or str(value).lower() == "true"


# --- Snapshots shared with another account -------------------------------------------
# AWS lets an account copy (or restore) a manual snapshot another account shared with it
# (its `restore` attribute names the account, or `all`), given the snapshot's ARN. moto
# looks an ARN up in the caller's own account only, so a copy into another account (a
# vault) fails there. Look the ARN up in the account it names, and answer "not found"
# unless it is shared with the caller, as AWS does.

_own_get_snapshot = rds_models.RDSBackend.get_snapshot


def _get_snapshot(self, identifier, resource_type, not_found_exception):
    if identifier.startswith("arn:"):
        region, account, _, name = split_arn(identifier)
        if account != self.account_id:
            owner = rds_models.rds_backends[account][region]
            snapshot = owner.resource_map[resource_type].get(name)
            shared_with = snapshot.attributes.get("restore", []) if snapshot is not None else []
            if snapshot is None or not (self.account_id in shared_with or "all" in shared_with):
                raise not_found_exception(identifier)
            return snapshot
    return _own_get_snapshot(self, identifier, resource_type, not_found_exception)


rds_models.RDSBackend.get_snapshot = _get_snapshot


# --- Error codes as AWS sends them ---------------------------------------------------
# moto answers a missing snapshot with `DBSnapshotNotFoundFault` and some state errors
# with `InvalidDBInstanceStateFault`; AWS (and the SDK's typed errors) use the names
# below. Retention's "already gone" check depends on the first.


def _snapshot_not_found(self, snapshot_identifier: str) -> None:
    RDSClientError.__init__(self, "DBSnapshotNotFound", f"DBSnapshot {snapshot_identifier} not found.")


def _invalid_instance_state(self, message: str) -> None:
    RDSClientError.__init__(self, "InvalidDBInstanceState", message)


rds_exceptions.DBSnapshotNotFoundFault.__init__ = _snapshot_not_found
rds_exceptions.InvalidDBInstanceStateFault.__init__ = _invalid_instance_state


# --- Model adjustments ---------------------------------------------------------------


def _cluster_status(self) -> str:
    return self._status


def _set_cluster_status(self, value: str) -> None:
    self._status = value


# moto reports a new cluster `creating` once, then `available`; the clock decides here.
rds_models.DBCluster.status = property(_cluster_status, _set_cluster_status)

_original_members = rds_models.DBCluster._members


def _members(self):
    # An instance being deleted no longer counts as a member: AWS deletes a cluster once
    # its instances are all deleting.
    return [m for m in _original_members.fget(self) if m.status != "deleting"]


rds_models.DBCluster._members = property(_members)

_original_endpoint = rds_models.DBInstance.endpoint


def _endpoint(self):
    # AWS assigns the endpoint when the instance first becomes available.
    if self.status == "creating":
        return None
    return _original_endpoint.fget(self)


rds_models.DBInstance.endpoint = property(_endpoint)

def _status_infos(self):
    """A read replica's `StatusInfos` as RDS reports it: "read replication" replicating,
    or in error while its source's region is down (the replica cannot reach its source;
    replication resumes when the region is back). moto reports none."""
    if not (self.is_replica and self.source_db_instance_identifier):
        return []
    source_region = region_of(self.source_db_instance_identifier, self.region)
    with LOCK:
        faults = REGISTRY.account(self.account_id).faults.values()
        down = any(
            f.kind == "region_outage" and f.region == source_region and f.service in (None, "rds") for f in faults
        )
    if down:
        return [
            {
                "StatusType": "read replication",
                "Normal": False,
                "Status": "error",
                "Message": f"Replication has stopped: the source DB instance in {source_region} cannot be reached.",
            }
        ]
    return [{"StatusType": "read replication", "Normal": True, "Status": "replicating"}]


rds_models.DBInstance.status_infos = property(_status_infos)

# moto leaves PercentProgress out; a finished snapshot is at 100 %.
rds_models.DBSnapshot.percent_progress = 100


# --- Running a resource through its states -----------------------------------------


def _state(backend):
    return REGISTRY.account(backend.account_id)


def _set(obj, status, progress=None):
    def effect():
        obj.status = status
        if progress is not None:
            obj.percent_progress = progress

    return effect


def _progress(obj):
    def update(fraction: float) -> None:
        obj.percent_progress = min(int(fraction * 100), 99)

    return update


def run(backend, obj, *, resource_type, resource, kind, status, steps):
    """Put `obj` in `status` now and through `steps` ((status, duration, effect?,
    progress?) tuples) as the account's clock runs."""
    obj.status = status
    _state(backend).begin(
        service="rds",
        region=backend.region_name,
        resource_type=resource_type,
        resource=resource,
        kind=kind,
        status=status,
        steps=[Step(*s) for s in steps],
    )


def run_instance(backend, db, kind, status, steps):
    run(backend, db, resource_type="db-instance", resource=db.db_instance_identifier, kind=kind, status=status, steps=steps)


def run_cluster(backend, cluster, kind, status, steps):
    run(
        backend,
        cluster,
        resource_type="db-cluster",
        resource=cluster.db_cluster_identifier,
        kind=kind,
        status=status,
        steps=steps,
    )


def run_snapshot(backend, snapshot, kind, steps):
    snapshot.percent_progress = 0
    run(
        backend,
        snapshot,
        resource_type="db-snapshot",
        resource=snapshot.db_snapshot_identifier,
        kind=kind,
        status=steps[0][0],
        steps=[(to, key, _set(snapshot, to, 100 if to == "available" else 0), prog) for _, to, key, prog in steps],
    )


def run_cluster_snapshot(backend, snapshot, kind, steps):
    snapshot.percent_progress = 0
    run(
        backend,
        snapshot,
        resource_type="db-cluster-snapshot",
        resource=snapshot.db_cluster_snapshot_identifier,
        kind=kind,
        status=steps[0][0],
        steps=[(to, key, _set(snapshot, to, 100 if to == "available" else 0), prog) for _, to, key, prog in steps],
    )


def created(backend, db, kind, duration):
    """A new instance: creating, then available."""
    run_instance(backend, db, kind, "creating", [("available", duration, _set(db, "available"))])


def standalone(db) -> None:
    """moto copies a restored instance's replication links from its source; a restored
    instance has none."""
    db.is_replica = False
    db.replicas = []
    db.source_db_instance_identifier = None


def region_of(identifier: str, default: str) -> str:
    return split_arn(identifier)[0] if identifier.startswith("arn:") else default


# --- Limits --------------------------------------------------------------------------


def check_manual_db_quota(backend) -> None:
    limit = _state(backend).limit("manual_db_snapshots_per_region")
    manual = sum(1 for s in backend.database_snapshots.values() if s.snapshot_type == "manual")
    if manual >= limit:
        raise error("SnapshotQuotaExceeded", f"Cannot create more than {limit} manual snapshots")


def check_manual_cluster_quota(backend) -> None:
    limit = _state(backend).limit("manual_cluster_snapshots_per_region")
    manual = sum(1 for s in backend.cluster_snapshots.values() if s.snapshot_type == "manual")
    if manual >= limit:
        raise error("SnapshotQuotaExceeded", f"Cannot create more than {limit} manual snapshots")


def copies_in_progress(snapshots, region: str) -> int:
    return sum(
        1
        for s in snapshots
        if getattr(s, "source_region", None) not in (None, region) and s.status in ("pending", "copying")
    )


def check_copy_slots(backend, snapshots) -> None:
    limit = _state(backend).limit("concurrent_copies_per_region")
    if copies_in_progress(snapshots, backend.region_name) >= limit:
        raise error("SnapshotQuotaExceeded", f"Cannot copy more than {limit} snapshots across regions")


# --- DB snapshots --------------------------------------------------------------------


@around(RDSResponse, "create_db_snapshot")
def create_db_snapshot(self, original):
    backend = self.backend
    with LOCK:
        instance_id = self.params.get("DBInstanceIdentifier")
        instance = backend.databases.get(instance_id)
        if instance is not None and instance.status != "available":
            raise error(
                "InvalidDBInstanceState",
                f"Cannot create a snapshot because the database instance {instance_id} is not currently "
                f"in the available state (it is {instance.status}).",
            )
        check_manual_db_quota(backend)
        result = original()
        snapshot = result.result["DBSnapshot"]
        run_snapshot(backend, snapshot, "create_db_snapshot", [("creating", "available", "db_snapshot_create", _progress(snapshot))])
        return result


@around(RDSResponse, "copy_db_snapshot")
def copy_db_snapshot(self, original):
    backend = self.backend
    with LOCK:
        source_id = self.params.get("SourceDBSnapshotIdentifier")
        source_region = region_of(source_id, backend.region_name)
        source = backend.get_db_snapshot(source_id)
        if source.status != "available":
            raise error(
                "InvalidDBSnapshotState",
                f"Snapshot {source_id} is {source.status}; only an available snapshot can be copied.",
            )
        cross_region = source_region != backend.region_name
        if cross_region:
            if source.encrypted and not self.params.get("KmsKeyId"):
                raise error("InvalidParameterValue", "Must specify new KMS key for cross region encrypted snapshot copy.")
            check_copy_slots(backend, backend.database_snapshots.values())
        check_manual_db_quota(backend)
        result = original()
        copy = result.result["DBSnapshot"]
        if cross_region:
            copy.source_region = source_region
            copy.source_db_snapshot_identifier = source.db_snapshot_arn
        run_snapshot(
            backend,
            copy,
            "copy_db_snapshot",
            [
                ("pending", "copying", "db_snapshot_copy_queue", None),
                ("copying", "available", "db_snapshot_copy", _progress(copy)),
            ],
        )
        return result


@around(RDSResponse, "delete_db_snapshot")
def delete_db_snapshot(self, original):
    backend = self.backend
    with LOCK:
        snapshot_id = self.params.get("DBSnapshotIdentifier")
        snapshot = backend.database_snapshots.get(snapshot_id)
        if snapshot is not None:
            if snapshot.snapshot_type == "automated":
                raise error("InvalidDBSnapshotState", "automated snapshots cannot be deleted.")
            if snapshot.status == "creating":
                raise error(
                    "InvalidDBSnapshotState",
                    f"Snapshot {snapshot_id} is still being created; it can be deleted once it is available.",
                )
            # Deleting a copy in progress terminates the copy (DeleteDBSnapshot API reference).
            _state(backend).cancel("rds", backend.region_name, "db-snapshot", snapshot.db_snapshot_identifier)
        result = original()
        result.result["DBSnapshot"].status = "deleted"
        return result


# --- DB cluster snapshots ----------------------------------------------------------------
# moto checks a DB snapshot's identifier (1-255 letters, digits, hyphens) but takes any
# cluster snapshot identifier; AWS allows 1 to 63 letters, digits or hyphens, a letter
# first, no hyphen last and no two in a row, and refuses anything else.


def check_cluster_snapshot_identifier(value, parameter: str) -> None:
    if value is None or value == "":
        raise error("InvalidParameterValue", f"The parameter {parameter} must be provided and must not be blank.")
    ok = (
        len(value) <= 63
        and value[0].isascii()
        and value[0].isalpha()
        and all(c.isascii() and (c.isalnum() or c == "-") for c in value)
        and not value.endswith("-")
        and "--" not in value
    )
    if not ok:
        raise error(
            "InvalidParameterValue",
            f"Invalid cluster snapshot identifier: {value}. {parameter} must be 1 to 63 letters, numbers or hyphens, "
            "start with a letter, and not end with a hyphen or contain two consecutive hyphens.",
        )



@around(RDSResponse, "create_db_cluster_snapshot")
def create_db_cluster_snapshot(self, original):
    backend = self.backend
    with LOCK:
        check_cluster_snapshot_identifier(self.params.get("DBClusterSnapshotIdentifier"), "DBClusterSnapshotIdentifier")
        cluster_id = self.params.get("DBClusterIdentifier")
        cluster = backend.clusters.get(cluster_id)
        if cluster is not None and cluster.status != "available":
            raise error(
                "InvalidDBClusterStateFault",
                f"DB cluster {cluster_id} is {cluster.status}; a snapshot can be taken when it is available.",
            )
        check_manual_cluster_quota(backend)
        result = original()
        snapshot = result.result["DBClusterSnapshot"]
        run_cluster_snapshot(
            backend, snapshot, "create_db_cluster_snapshot", [("creating", "available", "db_cluster_snapshot_create", _progress(snapshot))]
        )
        return result


@around(RDSResponse, "copy_db_cluster_snapshot")
def copy_db_cluster_snapshot(self, original):
    backend = self.backend
    with LOCK:
        check_cluster_snapshot_identifier(
            self.params.get("TargetDBClusterSnapshotIdentifier"), "TargetDBClusterSnapshotIdentifier"
        )
        source_id = self.params.get("SourceDBClusterSnapshotIdentifier")
        source_region = region_of(source_id, backend.region_name)
        source = backend.get_db_cluster_snapshot(source_id)
        if source.status != "available":
            raise error(
                "InvalidDBClusterSnapshotStateFault",
                f"DB cluster snapshot {source_id} is {source.status}; only an available snapshot can be copied.",
            )
        cross_region = source_region != backend.region_name
        if cross_region:
            if source.storage_encrypted and not self.params.get("KmsKeyId"):
                raise error("InvalidParameterValue", "Must specify new KMS key for cross region encrypted snapshot copy.")
            check_copy_slots(backend, backend.cluster_snapshots.values())
        check_manual_cluster_quota(backend)
        result = original()
        copy = result.result["DBClusterSnapshot"]
        if cross_region:
            copy.source_region = source_region
            copy.source_db_cluster_snapshot_arn = source.db_cluster_snapshot_arn
        run_cluster_snapshot(
            backend, copy, "copy_db_cluster_snapshot", [("copying", "available", "db_cluster_snapshot_copy", _progress(copy))]
        )
        return result


@around(RDSResponse, "delete_db_cluster_snapshot")
def delete_db_cluster_snapshot(self, original):
    backend = self.backend
    with LOCK:
        snapshot_id = self.params.get("DBClusterSnapshotIdentifier")
        snapshot = backend.cluster_snapshots.get(snapshot_id)
        if snapshot is not None:
            if snapshot.snapshot_type == "automated":
                raise error("InvalidDBClusterSnapshotStateFault", "Only manual snapshots may be deleted.")
            if snapshot.status == "creating":
                raise error(
                    "InvalidDBClusterSnapshotStateFault",
                    f"DB cluster snapshot {snapshot_id} is still being created; it can be deleted once it is available.",
                )
            _state(backend).cancel("rds", backend.region_name, "db-cluster-snapshot", snapshot.db_cluster_snapshot_identifier)
        return original()


# --- DB instances --------------------------------------------------------------------


@around(RDSResponse, "create_db_instance")
def create_db_instance(self, original):
    with LOCK:
        result = original()
        created(self.backend, result.result["DBInstance"], "create_db_instance", "db_instance_create")
        return result


@around(RDSResponse, "create_db_instance_read_replica")
def create_db_instance_read_replica(self, original):
    backend = self.backend
    with LOCK:
        source_id = self.params.get("SourceDBInstanceIdentifier")
        source = backend.find_db_from_id(source_id)
        if source.status != "available":
            raise error(
                "InvalidDBInstanceState",
                f"DB instance {source_id} is {source.status}; a read replica can be created when it is available.",
            )
        result = original()
        created(backend, result.result["DBInstance"], "create_db_instance_read_replica", "db_instance_read_replica")
        return result


@around(RDSResponse, "restore_db_instance_from_db_snapshot")
def restore_db_instance_from_db_snapshot(self, original):
    backend = self.backend
    with LOCK:
        snapshot_id = self.params.get("DBSnapshotIdentifier") or ""
        name = split_arn(snapshot_id)[3] if snapshot_id.startswith("arn:") else snapshot_id
        snapshot = backend.database_snapshots.get(name)
        if snapshot is not None and snapshot.status != "available":
            raise error(
                "InvalidDBSnapshotState",
                f"Snapshot {snapshot_id} is {snapshot.status}; only an available snapshot can be restored.",
            )
        result = original()
        db = result.result["DBInstance"]
        standalone(db)
        created(backend, db, "restore_db_instance_from_db_snapshot", "db_instance_restore")
        return result


@around(RDSResponse, "restore_db_instance_to_point_in_time")
def restore_db_instance_to_point_in_time(self, original):
    with LOCK:
        result = original()
        db = result.result["DBInstance"]
        standalone(db)
        created(self.backend, db, "restore_db_instance_to_point_in_time", "db_instance_restore_pitr")
        return result


def detach(backend, database) -> None:
    """Cut a replica loose from its source, as promotion (or deleting the replica) does."""
    try:
        source = backend.find_db_from_id(database.source_db_instance_identifier)
    except Exception:
        # The source is gone (or its region is): the replica is detached all the same.
        source = None
    if source is not None:
        for reference in (database.db_instance_arn, database.db_instance_identifier):
            if reference in source.replicas:
                source.replicas.remove(reference)
    database.is_replica = False
    database.source_db_instance_identifier = None


def promote_read_replica(backend, db_kwargs):
    """PromoteReadReplica: `modifying`, then a reboot, then `available` and standalone:
    no ReadReplicaSourceDBInstanceIdentifier, and the source no longer lists it. moto
    leaves a promoted replica looking like a replica and accepts promoting anything."""
    identifier = db_kwargs["db_instance_identifier"]
    with LOCK:
        database = backend.databases.get(identifier)
        if database is None:
            raise DBInstanceNotFoundError(identifier)
        if not database.is_replica or not database.source_db_instance_identifier:
            raise error("InvalidDBInstanceState", f"DB Instance {identifier} is not a read replica.")
        if database.status != "available":
            raise error(
                "InvalidDBInstanceState",
                f"DB instance {identifier} is {database.status}; a read replica can be promoted when it is available.",
            )
        # PromoteReadReplica's own parameters (backup retention, window) apply.
        settable = {k: v for k, v in db_kwargs.items() if k in ("backup_retention_period", "preferred_backup_window")}
        if settable:
            database.update(**settable)

        def finish():
            detach(backend, database)
            database.status = "available"

        run_instance(
            backend,
            database,
            "promote_read_replica",
            "modifying",
            [
                ("rebooting", "db_instance_promote", _set(database, "rebooting")),
                ("available", "db_instance_reboot", finish),
            ],
        )
        return database


rds_models.RDSBackend.promote_read_replica = promote_read_replica


def reboot_db_instance(backend, db_instance_identifier):
    with LOCK:
        database = backend.describe_db_instances(db_instance_identifier)[0]
        if database.status != "available":
            raise error(
                "InvalidDBInstanceState",
                f"DB instance {db_instance_identifier} is {database.status}; it can be rebooted when it is available.",
            )
        run_instance(
            backend, database, "reboot_db_instance", "rebooting", [("available", "db_instance_reboot", _set(database, "available"))]
        )
        return database


rds_models.RDSBackend.reboot_db_instance = reboot_db_instance


@around(RDSResponse, "delete_db_instance")
def delete_db_instance(self, original):
    backend = self.backend
    with LOCK:
        identifier = self.params.get("DBInstanceIdentifier")
        final = self.params.get("FinalDBSnapshotIdentifier")
        skip = truthy(self.params.get("SkipFinalSnapshot"))
        database = backend.databases.get(identifier)
        if database is None:
            return original()  # moto's DBInstanceNotFound
        if database.status == "deleting":
            raise error("InvalidDBInstanceState", f"DB instance {identifier} is already being deleted.")
        is_replica = database.is_replica and database.source_db_instance_identifier
        if final and is_replica:
            raise error(
                "InvalidParameterCombination",
                "FinalDBSnapshotIdentifier can not be specified when deleting a replica instance",
            )
        if not skip and not final and not is_replica and database.db_cluster_identifier is None:
            raise error(
                "InvalidParameterCombination",
                "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.",
            )
        if final and not skip:
            check_manual_db_quota(backend)
        if is_replica:
            # moto removes a cross-Region replica from its source by the wrong key.
            detach(backend, database)
        result = original()
        database = result.result["DBInstance"]
        backend.databases[identifier] = database

        def gone():
            if backend.databases.get(identifier) is database:
                del backend.databases[identifier]

        run_instance(backend, database, "delete_db_instance", "deleting", [("deleted", "db_instance_delete", gone)])
        if final and not skip and final in backend.database_snapshots:
            snapshot = backend.database_snapshots[final]
            run_snapshot(backend, snapshot, "create_db_snapshot", [("creating", "available", "db_snapshot_create", _progress(snapshot))])
        return result


# --- DB clusters ---------------------------------------------------------------------


@around(RDSResponse, "create_db_cluster")
def create_db_cluster(self, original):
    with LOCK:
        result = original()
        cluster = result.result["DBCluster"]
        run_cluster(self.backend, cluster, "create_db_cluster", "creating", [("available", "db_cluster_create", _set(cluster, "available"))])
        return result


@around(RDSResponse, "restore_db_cluster_from_snapshot")
def restore_db_cluster_from_snapshot(self, original):
    backend = self.backend
    with LOCK:
        snapshot_id = self.params.get("SnapshotIdentifier") or ""
        name = split_arn(snapshot_id)[3] if snapshot_id.startswith("arn:") else snapshot_id
        snapshot = backend.cluster_snapshots.get(name)
        if snapshot is not None and snapshot.status != "available":
            raise error(
                "InvalidDBClusterSnapshotStateFault",
                f"DB cluster snapshot {snapshot_id} is {snapshot.status}; only an available snapshot can be restored.",
            )
        result = original()
        cluster = result.result["DBCluster"]
        run_cluster(
            backend, cluster, "restore_db_cluster_from_snapshot", "creating", [("available", "db_cluster_restore", _set(cluster, "available"))]
        )
        return result


@around(RDSResponse, "restore_db_cluster_to_point_in_time")
def restore_db_cluster_to_point_in_time(self, original):
    with LOCK:
        result = original()
        cluster = result.result["DBCluster"]
        run_cluster(
            self.backend,
            cluster,
            "restore_db_cluster_to_point_in_time",
            "creating",
            [("available", "db_cluster_restore_pitr", _set(cluster, "available"))],
        )
        return result


@around(RDSResponse, "delete_db_cluster")
def delete_db_cluster(self, original):
    backend = self.backend
    with LOCK:
        identifier = self.params.get("DBClusterIdentifier")
        final = self.params.get("FinalDBSnapshotIdentifier")
        skip = truthy(self.params.get("SkipFinalSnapshot"))
        cluster = backend.clusters.get(identifier)
        if cluster is None:
            return original()  # moto's DBClusterNotFoundFault
        if cluster.status == "deleting":
            raise error("InvalidDBClusterStateFault", f"DB cluster {identifier} is already being deleted.")
        if not skip and not final:
            raise error(
                "InvalidParameterCombination",
                "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.",
            )
        if final and not skip:
            check_manual_cluster_quota(backend)
        result = original()
        cluster = result.result["DBCluster"]
        backend.clusters[identifier] = cluster

        def gone():
            if backend.clusters.get(identifier) is cluster:
                del backend.clusters[identifier]

        run_cluster(backend, cluster, "delete_db_cluster", "deleting", [("deleted", "db_cluster_delete", gone)])
        if final and not skip and final in backend.cluster_snapshots:
            snapshot = backend.cluster_snapshots[final]
            run_cluster_snapshot(
                backend, snapshot, "create_db_cluster_snapshot", [("creating", "available", "db_cluster_snapshot_create", _progress(snapshot))]
            )
        return result


# --- Pagination ----------------------------------------------------------------------

PAGED = {
    "describe_db_snapshots": ("DBSnapshots", "db_snapshot_identifier"),
    "describe_db_cluster_snapshots": ("DBClusterSnapshots", "db_cluster_snapshot_identifier"),
    "describe_db_instances": ("DBInstances", "db_instance_identifier"),
    "describe_db_clusters": ("DBClusters", "db_cluster_identifier"),
}


def _marker(offset: int, identifier: str) -> str:
    return base64.urlsafe_b64encode(f"{offset}:{identifier}".encode()).decode()


def _start(marker, items, key) -> int:
    try:
        offset, identifier = base64.urlsafe_b64decode(marker.encode()).decode().split(":", 1)
        offset = int(offset)
    except Exception:
        raise error("InvalidParameterValue", f"Invalid value {marker!r} for Marker: pass the Marker of the previous page.")
    ids = [getattr(i, key) for i in items]
    # Resume at the same item even when earlier ones were deleted between the pages.
    return ids.index(identifier) if identifier in ids else min(offset, len(items))


def paginated(name, result_key, id_key):
    @around(RDSResponse, name)
    def describe(self, original):
        raw = self.params.get("MaxRecords")
        size = 100
        if raw is not None:
            try:
                size = int(raw)
            except (TypeError, ValueError):
                size = -1
            if not 20 <= size <= 100:
                raise error("InvalidParameterValue", f"Invalid value {raw} for MaxRecords. Must be between 20 and 100")
        result = original()
        items = list(result.result[result_key])
        marker = self.params.get("Marker")
        start = _start(marker, items, id_key) if marker else 0
        page = items[start : start + size]
        end = start + len(page)
        next_marker = _marker(end, getattr(items[end], id_key)) if end < len(items) else None
        # A plain result: moto's own paginator (on DescribeDBInstances) must not page again.
        return ActionResult({result_key: page, "Marker": next_marker})


for _name, (_key, _id) in PAGED.items():
    paginated(_name, _key, _id)
