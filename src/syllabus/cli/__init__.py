"""The command-line interface: a thin skin over the library (`syllabus <noun> <verb>`)."""
