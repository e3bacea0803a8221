"""The agents' face: Twilio's event bridge, which the Worker SDK (twilio-taskrouter) talks to.

Beside the REST API, at <prefix>/v1/wschannels: the SDK's HTTP calls (requests.py) and its
websocket (hub.py), both authorised by a worker's access token (tokens.py), both on the same
engine as the REST API. views.py wires them into a Flask app; payloads.py and resources.py
give the resources the SDK's shapes.
"""
