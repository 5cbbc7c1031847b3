"""The web console (issue 7): server-rendered pages, Vietnamese by default."""
