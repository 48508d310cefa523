"""``python -m worker``: the broker-less worker of the embedded setup (see ``worker.standalone``)."""

from worker.standalone import main

main()
