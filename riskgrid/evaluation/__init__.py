"""Evaluation of forecasts: walk-forward backtests (:mod:`.walk_forward`) and their summaries (:mod:`.summary`)."""

from .walk_forward import METRICS, backtest, backtest_origins
from .summary import plot_backtest, summarize, summary_table

__all__ = ["backtest", "backtest_origins", "summarize", "summary_table", "plot_backtest", "METRICS"]
