"""``edge-ecg stream --web``: a live page of the stream, served from the stream's own process.

- :mod:`.hub`: the one place the classifier thread hands anything to the page: a bounded
  ring of messages (:class:`~.hub.Hub`), filled by :class:`~.hub.WebPublisher` (a view of
  the run, like the terminal's) and read by any number of browser connections;
- :mod:`.notable`: what goes in the page's list of events (V and S beats and runs, pauses,
  signal lost, gaps, glitches, adaptation progress);
- :mod:`.server`: the HTTP server (Python's ``http.server``, Server-Sent Events, GET only)
  in its own thread; the page's files are in ``static/`` inside the package (no CDN).

Nothing here imports TensorFlow, scipy, wfdb or matplotlib.
"""
