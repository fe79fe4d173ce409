from django.urls import path

from compensation import apis

app_name = "compensation"

urlpatterns = [
    path("me/", apis.MeApi.as_view(), name="me"),
    path("offer-sets/", apis.OfferSetListCreateApi.as_view(), name="offer-set-list"),
    path("offer-sets/<uuid:offer_set_id>/", apis.OfferSetDetailApi.as_view(), name="offer-set-detail"),
]
