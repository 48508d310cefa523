from django.urls import path

from . import views

urlpatterns = [
    path("audit/events/", views.EventListView.as_view(), name="audit-events"),
    path("audit/export/", views.ExportView.as_view(), name="audit-export"),
    path("audit/verify/", views.VerifyView.as_view(), name="audit-verify"),
    path("audit/checkpoint/", views.CheckpointView.as_view(), name="audit-checkpoint"),
    path("audit/proofs/consistency/", views.ConsistencyProofView.as_view(), name="audit-proof-consistency"),
    path("audit/proofs/inclusion/", views.InclusionProofView.as_view(), name="audit-proof-inclusion"),
]
