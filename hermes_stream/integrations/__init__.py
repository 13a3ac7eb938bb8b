"""Plugins that feed hermes-stream from agent frameworks (see :mod:`hermes_stream.integrations.hermes`)."""
