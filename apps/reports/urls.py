"""Dashboard URLs for reports."""

from django.urls import path

from . import views

app_name = "reports"

urlpatterns = [
    path("reports/", views.report_list, name="report_list"),
    path("reports/<uuid:report_id>/", views.report_detail, name="report_detail"),
    path("reports/<uuid:report_id>/download/<str:fmt>/", views.report_download, name="report_download"),
    path("releases/<uuid:release_id>/report/", views.release_report, name="release_report"),
    path("models/<slug:name>/report/", views.model_report, name="model_report"),
    path("reports/period/", views.period_report, name="period_report"),
    path("reports/trail/", views.trail_report, name="trail_report"),
    path("reports/schedules/", views.schedule_create, name="schedule_create"),
    path("reports/schedules/<uuid:schedule_id>/delete/", views.schedule_delete, name="schedule_delete"),
    path("access-reviews/", views.review_list, name="review_list"),
    path("access-reviews/start/", views.review_start, name="review_start"),
    path("access-reviews/<uuid:review_id>/", views.review_detail, name="review_detail"),
    path("access-reviews/<uuid:review_id>/items/<int:item_id>/", views.review_decide, name="review_decide"),
    path("access-reviews/<uuid:review_id>/close/", views.review_close, name="review_close"),
    path("access-reviews/<uuid:review_id>/report/", views.review_report, name="review_report"),
]
