"""orchestrator: Hotline's call control on Trio (SIP, calls, ACD, IVR, control)."""

__version__ = "0.1.0"
