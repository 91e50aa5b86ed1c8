"""hades: behaviour distillation with evolution strategies (HaDES).

Evolve a tiny synthetic dataset of state-action pairs such that behaviour cloning on it trains
a policy that scores a high return. See README.md for the command line, and
``hades.distill.Distiller`` / ``hades.runs.run`` for the library entry points.
"""

__version__ = "0.4.22"
