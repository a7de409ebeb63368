"""The control records of the attack evaluation: sensitive records the synthesizer never sees.

Anonymeter's attacks (``evaluate._attacks``) measure a privacy risk as the attacker's success
against the records synthesis used *beyond* its success against records it did not use, so those
records must be held out of synthesis. Both the synthesize stage (which leaves them out of its row
index) and the evaluate stage (which attacks with them) call :func:`control_record_ids`, so the two
agree without handing a list over.

The choice is a pure function of the run's synthesis seed and the record ids (``prepare`` numbers
records ``0 .. n-1``), through the counter-based hash of :mod:`ctdc_spark._random`: the same run
always holds out the same records, whatever the partitioning, and nobody without the secret seed
can tell which ones. It depends on the config only, never on whether anonymeter is installed, so
installing it does not change a run's synthetic data.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from ctdc_spark._random import stage_key, uniforms
from ctdc_spark.config import AttackConfig

CONTROL_STAGE = "attack-control"


def control_size(n_records: int, attacks: AttackConfig) -> int:
    """How many records are held out: ``min(floor(share * n), control_max)``, 0 below ``min_control``.

    Example:
        >>> control_size(15_000, AttackConfig()), control_size(200_000, AttackConfig())
        (1500, 2000)
        >>> control_size(4_999, AttackConfig())  # 499 control records would measure too little
        0
    """
    if not attacks.enabled:
        return 0
    size = min(math.floor(attacks.control_share * n_records), attacks.control_max)
    return size if size >= attacks.min_control else 0


def control_record_ids(n_records: int, attacks: AttackConfig, *, seed: int) -> npt.NDArray[np.int64]:
    """The sorted ids of the held-out records: the :func:`control_size` ids with the smallest draws.

    Args:
        n_records: Number of sensitive records (ids ``0 .. n_records - 1``).
        attacks: ``evaluation.attacks``.
        seed: The run's synthesis seed (:meth:`ctdc_spark.stage.RunContext.synthesis_seed`).

    Returns:
        ``int64`` ids, empty when nothing is held out.
    """
    size = control_size(n_records, attacks)
    if size == 0:
        return np.zeros(0, dtype=np.int64)
    draws = uniforms(stage_key(seed, CONTROL_STAGE), np.arange(n_records, dtype=np.int64))
    # A stable sort breaks (2^-53-likely) ties by record id, so the choice is fully determined.
    return np.sort(np.argsort(draws, kind="stable")[:size]).astype(np.int64)
