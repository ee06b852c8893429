"""Pictures (PNG), drawn by the library as ``sda plot`` draws them."""

from ._sda import plot_trajectories as trajectories

__all__ = ["trajectories"]
