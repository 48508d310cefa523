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
]
