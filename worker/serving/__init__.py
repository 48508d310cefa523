"""Serving for the local deployment target: one process per deployed version, one router per target.

``server`` answers the V2 / Open Inference Protocol for one approved artifact (hashed against its digest
before it is loaded with the safe loaders); ``router`` routes a service's traffic to its members by weight and
mirrors it to shadows; ``client`` is the small synchronous client the driver, the tests and the demo use.
Only workers import this package (the driver in ``worker.drivers.local`` starts these processes).
"""
