from migrate.cli.entry import main

main()
