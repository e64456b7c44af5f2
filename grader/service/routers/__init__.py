"""The service's routes: login, student pages, TA pages and the JSON API."""
