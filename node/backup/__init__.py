"""Backup and disaster recovery, offline: what an operator does with snapshot files
and data directories while no node holds them (docs/operations.md, "Backup and
disaster recovery").

* `backup_file`: read a saved snapshot file (`python -m cluster snapshot save`,
  or etcdctl's copy of the etcd face's stream) into a state machine; its status
  (etcdctl's `snapshot status`).
* `restore`: build one member's data directory of a NEW cluster from it
  (etcdctl's `snapshot restore`).
* `survivor`: a snapshot file of everything a stopped member's data directory
  holds (its newest snapshot plus its whole WAL), to restore a cluster from the
  one member that survived (jangada's way to etcd's `--force-new-cluster`).

`python -m node.backup` is their command line; `python -m cluster snapshot
status|restore` and `save --from-data-dir` run it (the cluster package does not
import the node's), and so does `python -m supervisor up N --from-snapshot`.
"""
from __future__ import annotations

from node.backup.backup_file import Backup, BackupStatus, load_backup
from node.backup.restore import RestoreRefused, restore_member, write_member
from node.backup.survivor import SurvivorState, save_survivor, survivor_state

__all__ = ["Backup", "BackupStatus", "RestoreRefused", "SurvivorState", "load_backup", "restore_member",
           "save_survivor", "survivor_state", "write_member"]
