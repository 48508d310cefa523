"""Dashboard URLs for releases."""

from django.urls import path

from . import views

app_name = "releases"

urlpatterns = [
    path("approvals/", views.approval_queue, name="approval_queue"),
    path("releases/", views.release_list, name="release_list"),
    path("releases/<uuid:release_id>/", views.release_detail, name="release_detail"),
    path("releases/<uuid:release_id>/decide/", views.release_decide, name="release_decide"),
    path("releases/<uuid:release_id>/cancel/", views.release_cancel, name="release_cancel"),
    path("releases/<uuid:release_id>/review/", views.review_close, name="review_close"),
    path("models/<slug:name>/versions/<int:number>/releases/", views.release_request, name="release_request"),
]
