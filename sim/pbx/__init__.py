"""A simulated Asterisk 22.10.1 PBX speaking AMI (and the Asterisk side of
FastAGI), for tests, the demo and benchmarks. See ``PbxSimulator``.

What is faithful (checked by tests/sim/test_sim_fidelity.py and
test_sim_agi.py against the recorded transcripts in tests/fixtures/ami/): the
banner, framing, Login/Challenge/Events/Filter, write-class checks, the reply
and error texts, list framing, the header names and order of every event and
list item, and the per-channel event sequences of Originate, Redirect, Dial,
Hangup (incl. causes and Local channel propagation), BlindTransfer, Atxfer /
CancelAtxfer, MixMonitor and FastAGI.

Where it knowingly differs from a real Asterisk:

* Event interleaving across channels is deterministic here; in Asterisk each
  channel has its own thread (where OriginateResponse lands, which of two
  channels leaves a bridge first, varies from run to run).
* Async Originate starts its channels 10 ms after replying.
* No DeviceStateChange for Local channels (only for the PJSIP endpoints), no
  queues (Queue() just waits; QueueAdd/QueuePause only check parameters), no
  parking, no CDR/CEL; Command knows ``core show version``, ``core show
  uptime``, ``manager show connected``.
* VarSet for variables someone sets (Originate Variable, Set(), Setvar,
  AGI), MIXMONITOR_FILENAME, the MixMonitor i() variable, TRANSFER_CONTEXT,
  AGISTATUS, and Asterisk's BRIDGEPEER, DIALSTATUS, DIALEDPEERNAME,
  DIALEDPEERNUMBER, BLINDTRANSFER, ATTENDEDTRANSFER, TRANSFERERNAME where a
  real 22.10.1 sets them; not the *TIME / *TIME_MS ones, CHANLOCALSTATUS or
  BRIDGEPVTCALLID.
* ChanSpy() runs the option logic of app_chanspy.c (u, E, S, b, q, w/W,
  B) and sends ChanSpyStart / ChanSpyStop, but there is no audio: the mode a
  session runs in is in ``PbxSimulator.spies()``. Originate refuses the
  applications and Data functions Asterisk 22 keeps for the ``system`` class
  ("Originate Access Forbidden: app or data blacklisted").
* PJSIP is not SIP: a phone rings (Newstate Ringing) and answers after
  ``answer_delay``; busy gives DialEnd BUSY (cause 17), unreachable
  CHANUNAVAIL (cause 20); an endpoint that does not exist fails Dial without
  creating a channel; an unanswered Dial times out with NOANSWER.
* The Bridge action follows a real 22.10.1 (tests/sim/test_sim_real_sessions.py):
  no surrogate channel in the events, after-bridge goto one priority on,
  BRIDGEPEER and connected-line updates; refused during an attended
  transfer ("Unable to add Channel1 to bridge"); on a pair that already
  shares a bridge it answers "Unable to add Channel2 to bridge" and the
  call is torn down. A Redirect of a bridged channel (Callwright's hold)
  shows the target with the old application before the bridge is left, as
  recorded; which leg leaves first varies on a real Asterisk, not here.
  A transferer hanging up before the attended-transfer target answered
  cancels the transfer here (Asterisk connects the transferee to the
  ringing target).
* No sound files: STREAM FILE, GET DATA, SAY DIGITS "play" at once, except
  file names starting with ``no-such`` (a missing file). Caller key presses
  come from ``send_dtmf``.
* MixMonitor writes its file (``spool_dir``, under ``monitor/``) as a tone per
  direction (440 Hz read, 660 Hz write; silence for a muted one), 8 kHz 16-bit
  mono ``.wav`` only, and only inside the spool; of its options only ``b``
  and ``i()`` are honoured (no append, volumes, beeps or post-command), see
  ``sim/pbx/recording.py``.
* The Filter action uses Python regular expressions, not POSIX ERE.
* A frozen link (``freeze_connections``) loses the events emitted meanwhile;
  a client that stops reading is dropped after 32 MiB of unsent data.
"""

from sim.pbx.engine import DeviceConfig
from sim.pbx.model import AmiUser, Bridge, SimChannel, SpySession
from sim.pbx.server import DEFAULT_USERS, PbxSimulator

__all__ = [
    "DEFAULT_USERS",
    "AmiUser",
    "Bridge",
    "DeviceConfig",
    "PbxSimulator",
    "SimChannel",
    "SpySession",
]
