"""The catalogue of services a patient can connect to their space, with consented access.

An operator registers a service (``mss catalogue add``); patients browse the
referenced ones in the portal and connect one through OAuth 2.0 authorization
code with PKCE (``mss.catalogue.oauth``); the service then calls the hub's FHIR
endpoints with a short-lived bearer token, under ``mss.policy.services``.
"""
