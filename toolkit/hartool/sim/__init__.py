"""Virtual devices for trying hartool without hardware: a pty serial IMU and phone-app / MCU senders.

* :mod:`hartool.sim.device`: :class:`~hartool.sim.device.VirtualDevice`, an IMU board on a pseudo-terminal
  (text or binary protocol, fault injection).
* :mod:`hartool.sim.board`: a classifying board for it (an injected model; prediction messages per window).
* :mod:`hartool.sim.signals`: turning a 50 Hz recording into what a phone measures (its own rate, jittery
  clocks, gravity split off the total acceleration).
* :mod:`hartool.sim.apps`: the packets HyperIMU, Sensor Logger and an MCU with ``micros()`` send.
* :mod:`hartool.sim.senders`: those packets over TCP, UDP, HTTP POST and MQTT, paced like the real thing.
* :mod:`hartool.sim.play`: ``app_packets(kind, ...)`` + ``play_app(kind, packets, to)``, what
  ``hartool simulate --as KIND --to TARGET`` runs.
"""
