from runsync.cli import main

main()
