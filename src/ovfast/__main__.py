from ovfast.cli import main

raise SystemExit(main())
