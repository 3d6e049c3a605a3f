<?php return array(
    'root' => array(
        'name' => 'gantry-bench/module-php',
        'pretty_version' => 'dev-modules',
        'version' => 'dev-modules',
        'reference' => 'f187fbcbe8ff6991155c285ac5e2f2485138abfa',
        'type' => 'project',
        'install_path' => __DIR__ . '/../../',
        'aliases' => array(),
        'dev' => true,
    ),
    'versions' => array(
        'gantry-bench/module-php' => array(
            'pretty_version' => 'dev-modules',
            'version' => 'dev-modules',
            'reference' => 'f187fbcbe8ff6991155c285ac5e2f2485138abfa',
            'type' => 'project',
            'install_path' => __DIR__ . '/../../',
            'aliases' => array(),
            'dev_requirement' => false,
        ),
        'gantry/sdk' => array(
            'pretty_version' => 'dev-modules',
            'version' => 'dev-modules',
            'reference' => '9d2762042117ed433c949258188a320b30523f5c',
            'type' => 'library',
            'install_path' => __DIR__ . '/../gantry/sdk',
            'aliases' => array(),
            'dev_requirement' => false,
        ),
    ),
);
