"""Slow, obvious reference implementations that the kernels are tested against."""

from __future__ import annotations

import numpy as np
