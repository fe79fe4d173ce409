from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from compensation.pages import event_choice_page
from recovery_project import health, views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("console/", include("console.urls")),
    path("r/<str:token>/", event_choice_page, name="event-choice"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/", RedirectView.as_view(pattern_name="api-root"), name="api"),
    path("api/v1/", views.ApiRootApi.as_view(), name="api-root"),
    path("api/v1/", include("compensation.urls")),
    path("api/v1/", include("reporting.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
]

handler400 = "compensation.exceptions.handler400"
handler404 = "compensation.exceptions.handler404"
handler500 = "compensation.exceptions.handler500"
