"""Experiments: deterministic assignment of units to arms, and the analysis of their results."""

from bidcore.experiments.assignment import (
    UNIT_SOURCES,
    Arm,
    Assignment,
    Experiment,
    Experiments,
    Layer,
    UnitSource,
    arm_seed,
    assign,
    assign_request,
    growthbook_experiment,
    load_layers,
    loads_layers,
    unit_id,
    unit_text,
)

__all__ = [
    "UNIT_SOURCES",
    "Arm",
    "Assignment",
    "Experiment",
    "Experiments",
    "Layer",
    "UnitSource",
    "arm_seed",
    "assign",
    "assign_request",
    "growthbook_experiment",
    "load_layers",
    "loads_layers",
    "unit_id",
    "unit_text",
]
