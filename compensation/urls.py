from django.urls import path

from compensation import apis

app_name = "compensation"

urlpatterns = [
    path("me/", apis.MeApi.as_view(), name="me"),
]
