from django.urls import path

from reporting import apis

app_name = "reporting"

urlpatterns = [
    path("outcomes/", apis.OutcomeListApi.as_view(), name="outcome-list"),
    path("reports/summary/", apis.SummaryReportApi.as_view(), name="report-summary"),
    path("reports/policies/", apis.PolicyReportApi.as_view(), name="report-policies"),
    path("reports/offer-kinds/", apis.KindReportApi.as_view(), name="report-offer-kinds"),
    path("reports/categories/", apis.CategoryReportApi.as_view(), name="report-categories"),
    path("reports/agents/", apis.AgentReportApi.as_view(), name="report-agents"),
    path("reports/learning/", apis.LearningReportApi.as_view(), name="report-learning"),
]
