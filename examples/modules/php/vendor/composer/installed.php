<?php return array(
    'root' => array(
        'name' => 'gantry-examples/module-php',
        'pretty_version' => 'dev-modules',
        'version' => 'dev-modules',
        'reference' => 'b82b89df659718c51cbda4af250c90c99902d92f',
        'type' => 'project',
        'install_path' => __DIR__ . '/../../',
        'aliases' => array(),
        'dev' => true,
    ),
    'versions' => array(
        'gantry-examples/module-php' => array(
            'pretty_version' => 'dev-modules',
            'version' => 'dev-modules',
            'reference' => 'b82b89df659718c51cbda4af250c90c99902d92f',
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
