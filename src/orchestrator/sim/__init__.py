"""orchestrator.sim: a discrete-event simulator running the real ACD policy on a simulated clock.

Used to check the policy against queueing theory (Erlang C for M/M/c), to
measure how well the estimated wait tracks real waits over a simulated day,
and by ``hotline plan`` users to try a staffing plan against the real policy.
"""

from .engine import Arrivals, SimResult, Simulation, constant, exponential, lognormal

__all__ = ["Arrivals", "SimResult", "Simulation", "constant", "exponential", "lognormal"]
