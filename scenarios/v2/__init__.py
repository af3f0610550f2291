"""Conformance suites for FirecREST v2 deployments (API 2.5.x), selected for
a target whose api.version is 2.x; written from the API description
(firecrest-api-v2.5.6.yaml), with SHOULD checks from the reference
implementation (firecrest-v2) and pyfirecrest 3.x's v2 client."""
