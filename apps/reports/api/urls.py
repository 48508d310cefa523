from django.urls import path

from . import views

urlpatterns = [
    path("reports/", views.ReportListApi.as_view(), name="reports"),
    path("reports/certificate/", views.CertificateApi.as_view(), name="report-certificate"),
    path("reports/files/<str:token>/", views.ReportFileApi.as_view(), name="report-file"),
    path("reports/<uuid:report_id>/", views.ReportDetailApi.as_view(), name="report-detail"),
    path("reports/<uuid:report_id>/download/<str:fmt>/", views.ReportDownloadApi.as_view(), name="report-download"),
]
