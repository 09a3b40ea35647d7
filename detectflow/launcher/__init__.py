"""Launchers: what runs the pipeline on one machine.

`embedded` runs it in this process (in-process bus, worker threads, the uploads-folder
watcher); `emulators` starts the local cloud (Pub/Sub and GCS emulators and the real functions
under functions-framework) as child processes. The runtime core never imports this package.
"""
