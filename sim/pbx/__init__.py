"""A simulated Asterisk 22 PBX speaking AMI (and the Asterisk side of FastAGI),
for tests, the demo and benchmarks. See ``PbxSimulator``."""

from sim.pbx.engine import DeviceConfig
from sim.pbx.model import AmiUser, Bridge, SimChannel
from sim.pbx.server import DEFAULT_USERS, PbxSimulator

__all__ = ["DEFAULT_USERS", "AmiUser", "Bridge", "DeviceConfig", "PbxSimulator", "SimChannel"]
