"""The API's side of :mod:`trellis_actors.access`: tokens, scopes and the one check."""

from __future__ import annotations

from ..access.check import METRICS as METRICS
from ..access.check import Auth as Auth
from ..access.check import Refused as Refused
from ..access.check import declare as declare
from ..access.check import needs as needs
from ..access.tokens import Scope as Scope
