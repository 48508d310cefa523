from django.urls import path

from . import views

urlpatterns = [
    path("audit/events/", views.EventListView.as_view(), name="audit-events"),
    path("audit/export/", views.ExportView.as_view(), name="audit-export"),
    path("audit/verify/", views.VerifyView.as_view(), name="audit-verify"),
]
