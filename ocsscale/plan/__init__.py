"""Playbooks rendered over the pool file into a plan (no connection needed)."""

from .build import Plan, PlanPhase, PlanStep, build_plan, not_built
from .playbook import PHASE_IDS, Playbook, find_playbook, load_playbook
from .stepref import StepRef

__all__ = [
    "PHASE_IDS",
    "Plan",
    "PlanPhase",
    "PlanStep",
    "Playbook",
    "StepRef",
    "build_plan",
    "find_playbook",
    "load_playbook",
    "not_built",
]
