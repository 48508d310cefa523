"""WSGI entry point (gunicorn controlplane.wsgi)."""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
application = get_wsgi_application()

# Load every view now rather than on the first request, then take what loading built (about
# 140,000 objects: modules, classes, URL patterns, serializers) out of the garbage collector's
# sight. Those objects live as long as the process; without this, each full collection walks
# all of them again and stalls the request it happens in for about 90 ms (3.5 ms frozen).
_ = get_resolver().reverse_dict  # imports every URLconf and view, and builds the reverse lookups
gc.freeze()
