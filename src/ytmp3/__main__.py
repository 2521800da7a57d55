from ytmp3.cli import main

raise SystemExit(main())
