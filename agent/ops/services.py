"""What operation handlers receive: the node's collaborators, wired by agent.node."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.config import Config
    from agent.ops.auth import Authenticator, TokenService
    from agent.ops.directory import UserDirectory
    from agent.storage.store import Storage


@dataclass
class Services:
    storage: Storage
    config: Config
    node_name: str
    directory: UserDirectory
    authenticator: Authenticator
    tokens: TokenService
    started: float = field(default_factory=time.time)
    replication: Any = None  # agent.replication.replicator.Replicator once wired
    certs: Any = None  # agent.certs.material.Material: this node's keys and certificates
    extra: dict = field(default_factory=dict)
