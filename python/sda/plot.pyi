from ._sda import plot_trajectories as trajectories

__all__ = ["trajectories"]
