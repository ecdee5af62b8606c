"""The deterministic etcd-style MVCC key-value state machine (see `machine`).

It executes the KV API defined once in `cluster.kv` (requests, results, errors,
limits, the codec); this package exports the state machine's own things: the
`StateMachine`, the watch events it derives from its history, the
replicated lease table and the auth state (`StateMachine.auth`: AuthStore,
its User and Role values). The other modules behind it are private to the package.
"""
from node.statemachine.auth_store import AuthEvent, AuthStore, Role, User
from node.statemachine.digest import TooLargeToHash
from node.statemachine.events import DELETE, PUT, Event, EventSlice, in_range
from node.statemachine.lease_table import Lease, LeaseEvent, LeaseHook, LeaseTable
from node.statemachine.machine import StateMachine

__all__ = [
    "AuthEvent", "AuthStore", "DELETE", "Event", "EventSlice", "Lease", "LeaseEvent", "LeaseHook", "LeaseTable",
    "PUT", "Role", "StateMachine", "TooLargeToHash", "User", "in_range",
]
