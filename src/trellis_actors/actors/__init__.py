"""The actor kernel: actors, refs, mailboxes, supervisors and the registry."""

from ._actor import Actor as Actor
from ._actor import ActorState as ActorState
from ._actor import ChildSpec as ChildSpec
from ._actor import RestartType as RestartType
from ._mailbox import DEFAULT_ASK_TIMEOUT as DEFAULT_ASK_TIMEOUT
from ._mailbox import Mailbox as Mailbox
from ._mailbox import MailboxStatistics as MailboxStatistics
from ._mailbox import Ref as Ref
from ._mailbox import Reply as Reply
from ._mailbox import Request as Request
from ._registry import ListActors as ListActors
from ._registry import Lookup as Lookup
from ._registry import Register as Register
from ._registry import Registry as Registry
from ._registry import RegistryChange as RegistryChange
from ._registry import Subscribe as Subscribe
from ._registry import Unregister as Unregister
from ._snapshot import ActorSnapshot as ActorSnapshot
from ._supervisor import DEFAULT_RESTART_BACKOFF as DEFAULT_RESTART_BACKOFF
from ._supervisor import AddChild as AddChild
from ._supervisor import Intensity as Intensity
from ._supervisor import RemoveChild as RemoveChild
from ._supervisor import Strategy as Strategy
from ._supervisor import Supervisor as Supervisor
from ._supervisor import WhichChildren as WhichChildren
from ._timer import Timer as Timer
