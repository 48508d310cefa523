from django.urls import path

from . import views

urlpatterns = [
    path("reports/", views.ReportListApi.as_view(), name="reports"),
    path("reports/certificate/", views.CertificateApi.as_view(), name="report-certificate"),
    path("reports/files/<str:token>/", views.ReportFileApi.as_view(), name="report-file"),
    path("reports/<uuid:report_id>/", views.ReportDetailApi.as_view(), name="report-detail"),
    path("reports/<uuid:report_id>/download/<str:fmt>/", views.ReportDownloadApi.as_view(), name="report-download"),
    path("report-schedules/", views.ScheduleListApi.as_view(), name="report-schedules"),
    path("report-schedules/<uuid:schedule_id>/", views.ScheduleDetailApi.as_view(), name="report-schedule"),
    path("access-reviews/", views.AccessReviewListApi.as_view(), name="access-reviews"),
    path("access-reviews/<uuid:review_id>/", views.AccessReviewDetailApi.as_view(), name="access-review-detail"),
    path(
        "access-reviews/<uuid:review_id>/items/<int:item_id>/",
        views.AccessReviewDecideApi.as_view(),
        name="access-review-decide",
    ),
    path("access-reviews/<uuid:review_id>/close/", views.AccessReviewCloseApi.as_view(), name="access-review-close"),
]
