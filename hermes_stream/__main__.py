from hermes_stream.cli import main

main()
