"""DynamoDB on-demand backups as AWS runs them: CREATING, then AVAILABLE; a backup still
being created cannot be deleted or restored (BackupInUseException); a backup name AWS
would refuse is refused (moto takes any)."""

import re

from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, MockValidationException
from moto.core.exceptions import JsonRESTError
from moto.dynamodb.models import DynamoDBBackend

from .state import LOCK, REGISTRY, Step


class BackupInUseException(JsonRESTError):
    def __init__(self, backup_arn: str):
        super().__init__(
            ERROR_TYPE_PREFIX + "BackupInUseException",
            f"Backup {backup_arn} is being created; it can be used once it is AVAILABLE.",
        )


_create_backup = DynamoDBBackend.create_backup
_delete_backup = DynamoDBBackend.delete_backup
_restore_table_from_backup = DynamoDBBackend.restore_table_from_backup


# CreateBackup's BackupName: 3 to 255 characters of [a-zA-Z0-9_.-].
_BACKUP_NAME = re.compile(r"[a-zA-Z0-9_.-]{3,255}")


def create_backup(self, table_name, backup_name):
    if backup_name is None or not _BACKUP_NAME.fullmatch(backup_name):
        raise MockValidationException(
            f"1 validation error detected: Value '{backup_name}' at 'backupName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+ and have length between 3 and 255"
        )
    with LOCK:
        backup = _create_backup(self, table_name, backup_name)
        backup.status = "CREATING"

        def available():
            backup.status = "AVAILABLE"

        REGISTRY.account(self.account_id).begin(
            service="dynamodb",
            region=self.region_name,
            resource_type="backup",
            resource=backup.arn,
            kind="create_backup",
            status="CREATING",
            steps=[Step("AVAILABLE", "dynamodb_backup_create", available)],
        )
        return backup


def _refuse_while_creating(backend, backup_arn):
    backup = backend.backups.get(backup_arn)
    if backup is not None and backup.status == "CREATING":
        raise BackupInUseException(backup_arn)


def delete_backup(self, backup_arn):
    with LOCK:
        _refuse_while_creating(self, backup_arn)
        return _delete_backup(self, backup_arn)


def restore_table_from_backup(self, target_table_name, backup_arn):
    with LOCK:
        _refuse_while_creating(self, backup_arn)
        return _restore_table_from_backup(self, target_table_name, backup_arn)


DynamoDBBackend.create_backup = create_backup
DynamoDBBackend.delete_backup = delete_backup
DynamoDBBackend.restore_table_from_backup = restore_table_from_backup
