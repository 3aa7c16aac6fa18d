"""Trellis: a background-task orchestration runtime for Python, built on trio actors."""

from ._backoff import Backoff as Backoff
from ._backoff import compute_backoff as compute_backoff
from .app import App as App
from .app import Retry as Retry
from .app import TaskType as TaskType
from .context import TaskContext as TaskContext
from .contracts import TaskHandle as TaskHandle
from .errors import ActorCrashed as ActorCrashed
from .errors import ActorStopped as ActorStopped
from .errors import AskTimeout as AskTimeout
from .errors import ConfigurationError as ConfigurationError
from .errors import InvalidTransition as InvalidTransition
from .errors import RuntimeNotRunning as RuntimeNotRunning
from .errors import StoreUnavailable as StoreUnavailable
from .errors import SupervisorEscalation as SupervisorEscalation
from .errors import TaskNotFound as TaskNotFound
from .errors import TrellisError as TrellisError
from .errors import UnknownTaskType as UnknownTaskType
from .errors import ValidationError as ValidationError
from .errors import WaitTimeout as WaitTimeout
from .http_check import HttpCheckPolicy as HttpCheckPolicy
from .lifecycle import Recorded as Recorded
from .lifecycle import Task as Task
from .lifecycle import TaskError as TaskError
from .lifecycle import TaskEvent as TaskEvent
from .lifecycle import TaskStatus as TaskStatus
from .lifecycle import Transition as Transition
from .runtime.config import RuntimeConfig as RuntimeConfig
from .runtime.events import EventStream as EventStream
from .runtime.janitor import Retention as Retention
from .runtime.runtime import Runtime as Runtime
from .runtime.runtime import open_runtime as open_runtime
from .runtime.worker import TaskTimeout as TaskTimeout
from .stores.nodes import NodeInfo as NodeInfo
from .workflow_context import WorkflowContext as WorkflowContext
from .workflows import HistoryEntry as HistoryEntry
from .workflows import NonDeterminism as NonDeterminism
from .workflows import NotAWorkflow as NotAWorkflow
from .workflows import StepFailed as StepFailed
from .workflows import WorkflowEnded as WorkflowEnded
from .workflows import WorkflowState as WorkflowState

__version__ = "0.1.0"
